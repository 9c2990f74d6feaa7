"""streamlearn: real-time fraud scoring on Kafka with continuous learning."""

__version__ = "0.1.0"
