"""Classical baselines behind the same contract as the deep models."""
