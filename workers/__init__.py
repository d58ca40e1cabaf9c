"""Workers: the desired-state ledger, the flush and publish actors and what they stand on."""
