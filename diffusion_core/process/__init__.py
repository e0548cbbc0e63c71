"""The probability path: noise schedules, the forward process and its marginals, the posterior, the variational bound."""
