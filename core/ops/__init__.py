"""Operations: what the /ops pages and /metrics read, and what the processes record for them."""
