"""`esm replay`: send what failed through the function again, once the bug is fixed.

Two paths (behaviour §4): from an SQS mapping's dead-letter queue, the messages move back to the
source queue (`dlq`); from an on-failure destination (an SQS queue or an S3 prefix of esm's or
AWS's on-failure documents), the records each document names are read again from the stream or
topic and the mapping's function is invoked with them in the mapping's event format (`failures`).
Both are dry runs unless told to execute, keep to a rate, show progress and end with a summary.
"""
