"""Amazon MQ for ActiveMQ (`aws:mq`): one queue of an ActiveMQ Classic broker, read over STOMP."""
