"""The learned latency predictor: work terms counted from block signatures, the predictor and its
fit, batch pricing over a search space, few-shot calibration and fidelity scores."""
