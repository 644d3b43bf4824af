"""Machine-learning code with no Django imports: encoding, heads, query strategies, explanations.

Services and Celery tasks call these modules; benchmarks and tests can use them on their own.
"""
