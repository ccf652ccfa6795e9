"""Accuracy estimators: the MLP estimator on a space's encoding (JSON, with provenance), fitting
one on subnets evaluated with inherited weights, and the bundled estimators (`estimators/`)."""
