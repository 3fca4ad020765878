"""One-time purchases: intents, submission, and the verify → confirm → credit pipeline."""
