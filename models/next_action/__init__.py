"""Next-action prediction on any event log: prefix features, a gradient-boosting model, baselines, evaluation."""

from models.next_action.baselines import MarkovBaseline, MostFrequentBaseline
from models.next_action.evaluate import evaluate_next_action
from models.next_action.model import NextActionModel

__all__ = ["MarkovBaseline", "MostFrequentBaseline", "NextActionModel", "evaluate_next_action"]
