-- Orders and revenue per tenant, UTC day of creation and currency (seed 001), with what Stripe
-- captured for them (payments). Read up to the build's cut-off (source_cutoff): the orders created
-- by then, paid by then for revenue, the refunds recorded by then (order_refunds); checkouts and
-- refunds written while the marts build wait for the next one.
with cutoff as (
    select {{ build_cutoff() }} as at
),

refunds as (
    select r.tenant_id, r.order_id, {{ money_sum('r.amount') }} as amount
    from {{ source('warehouse', 'order_refunds') }} r
    cross join cutoff
    where {{ current_tenant('r.tenant_id') }} and {{ utc_ts('r.recorded_at') }} <= cutoff.at
    group by r.tenant_id, r.order_id
),

esims as (
    select tenant_id, order_id, count(*) as n
    from {{ source('operational', 'order_esims') }}
    group by tenant_id, order_id
),

captured as (
    select tenant_id, order_id, {{ money_sum('amount') }} as amount
    from {{ source('warehouse', 'payments') }}
    where status = 'succeeded' and order_id is not null
    group by tenant_id, order_id
),

orders as (
    select o.tenant_id,
           {{ utc_day('o.created_at') }} as day,
           o.currency,
           o.status,
           case when {{ utc_ts('o.paid_at') }} <= cutoff.at then o.paid_at end as paid_at,
           o.amount_total,
           coalesce(r.amount, 0) as amount_refunded,
           coalesce(e.n, 0) as esims,
           c.amount as captured,
           cutoff.at as source_cutoff
    from {{ source('warehouse', 'orders') }} o
    cross join cutoff
    left join refunds r on r.tenant_id = o.tenant_id and r.order_id = o.order_id
    left join esims e on e.tenant_id = o.tenant_id and e.order_id = o.order_id
    left join captured c on c.tenant_id = o.tenant_id and c.order_id = o.order_id
    where {{ current_tenant('o.tenant_id') }} and {{ utc_ts('o.created_at') }} <= cutoff.at
)

select tenant_id,
       day,
       currency,
       count(*) as orders,
       sum(case when paid_at is not null then 1 else 0 end) as paid_orders,
       sum(case when status in ('provisioned', 'partially_provisioned') then 1 else 0 end) as provisioned,
       sum(case when status = 'failed' then 1 else 0 end) as failed,
       sum(case when status = 'expired' then 1 else 0 end) as expired,
       sum(case when status = 'refunded' then 1 else 0 end) as refunded,
       sum(esims) as esims,
       {{ money_sum('case when paid_at is not null then amount_total else 0 end') }} as revenue,
       {{ money_sum('amount_refunded') }} as refunds,
       {{ money_sum('case when paid_at is not null then amount_total else 0 end') }}
         - {{ money_sum('amount_refunded') }} as net_revenue,
       {{ money_sum('captured') }} as captured,
       max(source_cutoff) as source_cutoff
from orders
group by tenant_id, day, currency
