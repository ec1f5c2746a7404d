"""Factories of a user's own classifiers, read by ``--estimator own_estimators:<name>`` in the
tests (``models.classifier.load_estimator``); and ones that are not classifiers."""

from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.svm import LinearSVC


def naive_bayes() -> GaussianNB:
    """A classifier of a type a skops model file does not hold by default."""
    return GaussianNB(var_smoothing=1e-6)


def stronger_penalty() -> LogisticRegression:
    """A classifier of a type every model file may hold."""
    return LogisticRegression(C=0.05, max_iter=500)


def no_probabilities() -> LinearSVC:
    """A classifier without predict_proba."""
    return LinearSVC()


def failing():
    """A factory that raises."""
    raise RuntimeError("the factory's own failure")


#: Not callable and not an estimator.
NUMBER = 3
