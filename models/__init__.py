"""What learns and what judges: the article's rules, the calibrated classifier, metrics, reports."""
