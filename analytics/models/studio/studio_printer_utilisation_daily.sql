-- Printer utilisation per studio (tenant), printer and UTC day (issue 14): hours printing ÷ hours
-- available. A print job counts once it has ended (done or failed: started_at and finished_at set),
-- split across the days it ran over; a printer has 24 hours a day, from the day of its first job
-- to the day its last one ended (days between without a job are 0 % used, not left out).
with recursive jobs as (
    select j.tenant_id,
           j.printer_id,
           {{ epoch_hours('j.started_at') }} as start_h,
           {{ epoch_hours('j.finished_at') }} as end_h,
           {{ utc_day('j.started_at') }} as first_day,
           {{ utc_day('j.finished_at') }} as last_day
    from {{ source('warehouse', 'studio_print_jobs') }} j
    where j.printer_id is not null and j.started_at is not null and j.finished_at is not null
      and j.finished_at >= j.started_at and {{ current_tenant('j.tenant_id') }}
),

spans as (
    select tenant_id, printer_id, min(first_day) as first_day, max(last_day) as last_day
    from jobs
    group by tenant_id, printer_id
),

days as (
    select tenant_id, printer_id, first_day as day, last_day from spans
    union all
    select tenant_id, printer_id, {{ next_day('day') }}, last_day from days where day < last_day
),

used as (
    select d.tenant_id,
           d.printer_id,
           d.day,
           sum(case when j.start_h is null then 0
                    else {{ larger('0', smaller('j.end_h', epoch_hours('d.day') ~ ' + 24') ~ ' - ' ~ larger('j.start_h', epoch_hours('d.day'))) }}
               end) as hours_printing,
           count(j.start_h) as jobs
    from days d
    left join jobs j
           on j.tenant_id = d.tenant_id and j.printer_id = d.printer_id
          and j.first_day <= d.day and j.last_day >= d.day
    group by d.tenant_id, d.printer_id, d.day
)

select u.tenant_id,
       u.printer_id,
       p.name as printer_name,
       u.day,
       u.jobs,
       {{ round_to('u.hours_printing', 4) }} as hours_printing,
       24 as hours_available,
       {{ round_to('u.hours_printing / 24.0', 4) }} as utilisation
from used u
join {{ source('warehouse', 'studio_printers') }} p on p.tenant_id = u.tenant_id and p.id = u.printer_id
