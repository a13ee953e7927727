"""bench/mq: Amazon MQ brokers, raw client loops against esm."""
