"""Virtual-staining predictors behind one predict interface (:mod:`vsbench.algorithms.base`)."""
