"""River online learners, online metrics with delayed labels (no Kafka, no settings here)."""
