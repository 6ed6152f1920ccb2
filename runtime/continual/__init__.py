"""Continual learning: task streams, methods (sequential, EWC, replay, adapters, ADA), the accuracy matrix."""
