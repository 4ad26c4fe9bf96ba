-- POS customers per tenant, source and type, from the PII-free customers_analytics view.
select tenant_id,
       source,
       coalesce(customer_type, 'unknown') as customer_type,
       count(*) as customers,
       sum(case when marketing_opt_in then 1 else 0 end) as marketing_opt_in,
       {{ money_sum('loyalty_points') }} as loyalty_points
from {{ source('warehouse', 'customers_analytics') }}
where deleted_at is null and {{ current_tenant() }}
group by tenant_id, source, coalesce(customer_type, 'unknown')
