-- Provisioning per tenant, UTC day and provider: calls, successes, breaker skips, latency
-- percentiles and error classes (seed 001). Read up to the build's cut-off (source_cutoff): the
-- attempts started by then; those started while the marts build wait for the next one.
with attempts as (
    select tenant_id,
           {{ utc_day('started_at') }} as day,
           provider,
           outcome,
           error_class,
           latency_ms,
           cutoff.at as source_cutoff
    from {{ source('warehouse', 'provisioning_attempts') }}
    cross join (select {{ build_cutoff() }} as at) cutoff
    where {{ current_tenant() }} and {{ utc_ts('started_at') }} <= cutoff.at
),

totals as (
    select tenant_id, day, provider,
           sum(case when outcome <> 'skipped' then 1 else 0 end) as attempts,
           sum(case when outcome = 'succeeded' then 1 else 0 end) as succeeded,
           sum(case when outcome = 'skipped' and error_class = 'circuit_open' then 1 else 0 end) as skipped_open,
           max(source_cutoff) as source_cutoff
    from attempts
    group by tenant_id, day, provider
),

ranked as (
    select tenant_id, day, provider, latency_ms as value,
           row_number() over (partition by tenant_id, day, provider order by latency_ms) as rn,
           count(*) over (partition by tenant_id, day, provider) as n
    from attempts
    where outcome <> 'skipped' and latency_ms is not null
),

p50 as ({{ percentile_of('ranked', ['tenant_id', 'day', 'provider'], 50) }}),
p95 as ({{ percentile_of('ranked', ['tenant_id', 'day', 'provider'], 95) }}),

error_counts as (
    select tenant_id, day, provider, error_class, count(*) as n
    from attempts
    where error_class is not null
    group by tenant_id, day, provider, error_class
),

errors as (
    select tenant_id, day, provider, {{ json_counts('error_class', 'n') }} as error_classes
    from error_counts
    group by tenant_id, day, provider
)

select t.tenant_id,
       t.day,
       t.provider,
       t.attempts,
       t.succeeded,
       t.skipped_open,
       case when t.attempts > 0 then {{ round_to('1.0 * t.succeeded / t.attempts', 4) }} end as success_rate,
       {{ round_to('p50.value', 2) }} as p50_latency_ms,
       {{ round_to('p95.value', 2) }} as p95_latency_ms,
       coalesce(errors.error_classes, '{}') as error_classes,
       t.source_cutoff
from totals t
left join p50 on p50.tenant_id = t.tenant_id and p50.day = t.day and p50.provider = t.provider
left join p95 on p95.tenant_id = t.tenant_id and p95.day = t.day and p95.provider = t.provider
left join errors on errors.tenant_id = t.tenant_id and errors.day = t.day and errors.provider = t.provider
