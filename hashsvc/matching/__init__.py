"""Matching: in-memory index replicas of the bank, and the rule turning index hits into matches."""

from hashsvc.matching.matcher import Matcher
from hashsvc.matching.replica import ReplicaSet

__all__ = ["Matcher", "ReplicaSet"]
