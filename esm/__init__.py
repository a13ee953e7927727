"""esm: AWS Lambda event source mappings outside AWS.

The package runs one asyncio daemon that polls SQS, Kinesis and Kafka, filters and batches
records, invokes a function and settles each record exactly as Lambda's event source mappings do.
"""

__version__ = "0.1.0"
