"""What a shop does when it sells: the domain services behind the shop API.

Checkout, Stripe events and the order state machine, provisioning with provider failover, the
effects outbox (emails, Slack, refunds), POS orders and POS webhook events, and the workers that
run the durable jobs. ``api/`` puts HTTP in front of these; the hourly stuck-order asset
(``assets/orders.py``) runs the very same provisioning and effects services, so there is one
engine that buys eSIMs, never two. Depends on ``resources`` and ``warehouse`` only.
"""
