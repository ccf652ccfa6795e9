import numpy as np
import pytest

from nas.training.data import Dataset, Normalizer
from search_spaces import zoo
from search_spaces.mbv3 import MobileNetV3Space


def grey_data(size=8, per_class=96, seed=0) -> Dataset:
    """Two classes told apart by brightness alone: any network that trains learns them."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], per_class)
    images = rng.integers(0, 100, (len(labels), size, size, 1)) + 120 * labels[:, None, None, None]
    order = rng.permutation(len(labels))
    images, labels = images[order].astype(np.uint8), labels[order].astype(np.int32)
    half = len(labels) // 2
    return Dataset("grey", images[:half], labels[:half], images[half:], labels[half:], ("dark", "bright"))


@pytest.mark.parametrize("name", ["mobilenet_v2_1.0", "mnasnet_a1", "mobilenet_v3_small_0.35"])
def test_for_data_keeps_every_layer_and_fits_the_input_and_classes(name):
    from nas.training.standalone import for_data

    published = zoo.get(name)
    fitted = for_data(published, grey_data(size=28))
    assert (fitted.resolution, fitted.in_channels, fitted.num_classes) == (28, 1, 2)
    assert fitted.stem[0].in_ch == 1 and fitted.stem[1:] == published.stem[1:]
    assert fitted.layers == published.layers and fitted.head == published.head
    assert fitted.classifier.in_ch == published.classifier.in_ch
    assert fitted.shapes[-1].out_shape == (1, 1, 2)


def test_train_alone_learns_a_separable_task():
    from nas.training.evaluation import Evaluator, plain_forward
    from nas.training.run import TrainConfig
    from nas.training.standalone import for_data, train_alone
    from nas.training.step import make_mesh

    data = grey_data()
    space = MobileNetV3Space(num_classes=2, in_channels=1, stages=1)
    spec = for_data(space.materialize(space.sample(np.random.default_rng(0)), proxy=True), data)
    train = TrainConfig(batch_size=16, learning_rate=0.05, augmentation="none")
    normalizer = Normalizer.fit(data.train_x)
    mesh = make_mesh()
    graphdef, params, stats = train_alone(spec, data, train, normalizer, mesh, epochs=3, seed=0)
    evaluator = Evaluator(
        graphdef, stats, mesh, normalizer, data.train_x, data.test_x, data.test_y, 16, forward=plain_forward
    )
    assert evaluator.top1(params, None) >= 0.9
