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

{#- A key of a JSON document column (JSONB on PostgreSQL, JSON text on SQLite) as text; an object
    or array comes back as its JSON text (one spelling per database, so equal documents compare equal). -#}
{% macro json_text(column, key) -%}
  {{ return(adapter.dispatch('json_text', 'storehouse')(column, key)) }}
{%- endmacro %}
{% macro default__json_text(column, key) %}({{ column }} ->> '{{ key }}'){% endmacro %}
{% macro sqlite__json_text(column, key) %}json_extract({{ column }}, '$.{{ key }}'){% endmacro %}

{#- 1 when a key of a JSON document column is JSON true, else 0. -#}
{% macro json_flag(column, key) -%}
  {{ return(adapter.dispatch('json_flag', 'storehouse')(column, key)) }}
{%- endmacro %}
{% macro default__json_flag(column, key) %}(case when jsonb_typeof({{ column }} -> '{{ key }}') = 'boolean' and ({{ column }} ->> '{{ key }}') = 'true' then 1 else 0 end){% endmacro %}
{% macro sqlite__json_flag(column, key) %}(case when json_type({{ column }}, '$.{{ key }}') = 'true' then 1 else 0 end){% endmacro %}

{#- A timestamp (or a date, at 00:00 UTC) as hours since 1970-01-01 UTC: time spans as plain arithmetic. -#}
{% macro epoch_hours(expr) -%}
  {{ return(adapter.dispatch('epoch_hours', 'storehouse')(expr)) }}
{%- endmacro %}
{% macro default__epoch_hours(expr) %}(extract(epoch from {{ expr }}) / 3600.0){% endmacro %}
{% macro sqlite__epoch_hours(expr) %}((julianday({{ expr }}) - 2440587.5) * 24.0){% endmacro %}

{#- A date's next day. -#}
{% macro next_day(expr) -%}
  {{ return(adapter.dispatch('next_day', 'storehouse')(expr)) }}
{%- endmacro %}
{% macro default__next_day(expr) %}cast({{ expr }} + 1 as date){% endmacro %}
{% macro sqlite__next_day(expr) %}date({{ expr }}, '+1 day'){% endmacro %}

{#- The larger and the smaller of two numbers. -#}
{% macro larger(a, b) -%}
  {{ return(adapter.dispatch('larger', 'storehouse')(a, b)) }}
{%- endmacro %}
{% macro default__larger(a, b) %}greatest({{ a }}, {{ b }}){% endmacro %}
{% macro sqlite__larger(a, b) %}max({{ a }}, {{ b }}){% endmacro %}
{% macro smaller(a, b) -%}
  {{ return(adapter.dispatch('smaller', 'storehouse')(a, b)) }}
{%- endmacro %}
{% macro default__smaller(a, b) %}least({{ a }}, {{ b }}){% endmacro %}
{% macro sqlite__smaller(a, b) %}min({{ a }}, {{ b }}){% endmacro %}
