"""AWS Lambda entry point (Handler: `lambda_function.handler`): S3, EventBridge, SNS and SQS events.

Configuration is by environment variables: see the README.
"""

from __future__ import annotations

from dagtrigger.platforms.aws_lambda import handle

handler = handle
