{#- The 3D-print studio (seed 002). -#}

{#- The day receivables are aged at: the dbt var `studio_as_of` ('YYYY-MM-DD', e.g.
    `--vars '{studio_as_of: 2026-06-30}'` for a month-end report), else the build's day (UTC). -#}
{% macro studio_as_of() -%}
  {%- set day = var('studio_as_of', '') -%}
  {%- if day -%}{{ date_literal(day) }}{%- else -%}{{ utc_today() }}{%- endif -%}
{%- endmacro %}

{#- The date a document was issued: the date printed on it, else the UTC day it was issued
    (invoices) or sent (quotes). Drafts have none. -#}
{% macro studio_issued_on(d, issued_at) -%}
case when {{ d }}.status <> 'draft' then coalesce({{ d }}.issue_date, {{ utc_day(d ~ '.' ~ issued_at) }}) end
{%- endmacro %}
