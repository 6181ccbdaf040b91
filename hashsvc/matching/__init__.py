"""Matching: in-memory index replicas of the bank, the rule turning index hits into matches, and
``decide``, the same decision for one victim picture against one upload."""

from hashsvc.matching.decide import MatchDecision, decide
from hashsvc.matching.matcher import Matcher
from hashsvc.matching.replica import ReplicaSet

__all__ = ["MatchDecision", "Matcher", "ReplicaSet", "decide"]
