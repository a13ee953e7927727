"""Amazon MQ for RabbitMQ (`aws:rmq`): one queue of a broker, read over AMQP 0-9-1 on the queue contract."""
