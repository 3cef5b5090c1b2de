"""One partition per franchise (keyed by franchise code): models are trained on a franchise's practices."""

from dagster import DynamicPartitionsDefinition

franchises = DynamicPartitionsDefinition(name="model_franchises")
