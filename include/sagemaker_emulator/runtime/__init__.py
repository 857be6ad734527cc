"""Model worker runtime: one OS process per endpoint instance, emulating a SageMaker inference container."""
