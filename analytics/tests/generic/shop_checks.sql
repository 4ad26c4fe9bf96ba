{#- The shop's refunds ledger holds every refund (run on its source tables, blocking, as the
    studio's checks): per order, the refunds recorded in `order_refunds` add up to what the order
    says was refunded, and the last one's running total is that amount too. Both are written in one
    transaction (commerce.orders.raise_refunded), so no cut-off is needed; a refund written around
    the ledger (an API older than it, a hand edit) would be missing from mart_orders_daily for good,
    so the check holds the mart back until it is mended. Returns the orders that break it. -#}
{% test refunds_recorded(model, refunds) %}
with ledger as (
    select tenant_id, order_id, {{ money_sum('amount') }} as recorded, max({{ money('refunded_total') }}) as last_total
    from {{ refunds }}
    where {{ current_tenant() }}
    group by tenant_id, order_id
),

refunded as (
    select tenant_id, order_id, {{ money('amount_refunded') }} as amount_refunded
    from {{ model }}
    where {{ current_tenant() }}
)

select coalesce(o.tenant_id, l.tenant_id) as tenant_id, coalesce(o.order_id, l.order_id) as order_id,
       o.amount_refunded, l.recorded, l.last_total
from refunded o
full outer join ledger l on l.tenant_id = o.tenant_id and l.order_id = o.order_id
where abs(coalesce(o.amount_refunded, 0) - coalesce(l.recorded, 0)) > 0.00005
   or abs(coalesce(o.amount_refunded, 0) - coalesce(l.last_total, 0)) > 0.00005
{% endtest %}
