{#- SQL that differs between the SQLite warehouse and PostgreSQL, in one place. Every model calls
    these instead of a dialect's own function, so the same models build on both. -#}

{#- An amount as a number. SQLite stores money as canonical decimal text (or NUMERIC), PostgreSQL
    as NUMERIC(18, 4): both aggregate only once cast. -#}
{% macro money(expr) -%}
  {{ return(adapter.dispatch('money', 'storehouse')(expr)) }}
{%- endmacro %}
{% macro default__money(expr) %}cast({{ expr }} as numeric){% endmacro %}
{% macro sqlite__money(expr) %}cast({{ expr }} as real){% endmacro %}

{#- An exact sum of amounts. PostgreSQL sums NUMERIC exactly; SQLite would sum floats, so there the
    amounts are summed as integer ten-thousandths (the warehouse keeps four places) and scaled back. -#}
{% macro money_sum(expr) -%}
  {{ return(adapter.dispatch('money_sum', 'storehouse')(expr)) }}
{%- endmacro %}
{% macro default__money_sum(expr) %}coalesce(sum(cast({{ expr }} as numeric)), 0){% endmacro %}
{% macro sqlite__money_sum(expr) -%}
  round(coalesce(sum(cast(round(cast({{ expr }} as real) * 10000) as integer)), 0) / 10000.0, 4)
{%- endmacro %}

{#- The UTC calendar day of a timestamp (TIMESTAMPTZ on PostgreSQL, UTC text on SQLite). -#}
{% macro utc_day(expr) -%}
  {{ return(adapter.dispatch('utc_day', 'storehouse')(expr)) }}
{%- endmacro %}
{% macro default__utc_day(expr) %}cast(({{ expr }} at time zone 'UTC') as date){% endmacro %}
{% macro sqlite__utc_day(expr) %}date({{ expr }}){% endmacro %}

{#- A timestamp compared and returned as UTC (SQLite: normalised text, whatever offset it carries). -#}
{% macro utc_ts(expr) -%}
  {{ return(adapter.dispatch('utc_ts', 'storehouse')(expr)) }}
{%- endmacro %}
{% macro default__utc_ts(expr) %}{{ expr }}{% endmacro %}
{% macro sqlite__utc_ts(expr) %}strftime('%Y-%m-%d %H:%M:%f', {{ expr }}){% endmacro %}

{#- Hours from a timestamp to the time the models are built. -#}
{% macro hours_since(expr) -%}
  {{ return(adapter.dispatch('hours_since', 'storehouse')(expr)) }}
{%- endmacro %}
{% macro default__hours_since(expr) %}round(cast(extract(epoch from (now() - {{ expr }})) / 3600.0 as numeric), 2){% endmacro %}
{% macro sqlite__hours_since(expr) %}round((julianday('now') - julianday({{ expr }})) * 24.0, 2){% endmacro %}

{#- A date n days after today (UTC). -#}
{% macro days_from_today(n) -%}
  {{ return(adapter.dispatch('days_from_today', 'storehouse')(n)) }}
{%- endmacro %}
{% macro default__days_from_today(n) %}cast((now() at time zone 'UTC') as date) + {{ n }}{% endmacro %}
{% macro sqlite__days_from_today(n) %}date('now', '+{{ n }} days'){% endmacro %}

{#- Whole days from today (UTC) to a date. -#}
{% macro days_until(expr) -%}
  {{ return(adapter.dispatch('days_until', 'storehouse')(expr)) }}
{%- endmacro %}
{% macro default__days_until(expr) %}({{ expr }} - cast((now() at time zone 'UTC') as date)){% endmacro %}
{% macro sqlite__days_until(expr) %}cast(julianday({{ expr }}) - julianday(date('now')) as integer){% endmacro %}

{#- A number rounded to n places (PostgreSQL rounds only NUMERIC to places). -#}
{% macro round_to(expr, places) -%}
  {{ return(adapter.dispatch('round_to', 'storehouse')(expr, places)) }}
{%- endmacro %}
{% macro default__round_to(expr, places) %}cast(round(cast({{ expr }} as numeric), {{ places }}) as double precision){% endmacro %}
{% macro sqlite__round_to(expr, places) %}round({{ expr }}, {{ places }}){% endmacro %}

{#- {key: count} as JSON text, from rows of (key, count) in a group. -#}
{% macro json_counts(key, count) -%}
  {{ return(adapter.dispatch('json_counts', 'storehouse')(key, count)) }}
{%- endmacro %}
{% macro default__json_counts(key, count) %}cast(json_object_agg({{ key }}, {{ count }} order by {{ key }}) as text){% endmacro %}
{% macro sqlite__json_counts(key, count) %}json_group_object({{ key }}, {{ count }}){% endmacro %}

{#- A boolean column as true/false in a filter (SQLite stores 0/1). -#}
{% macro is_true(expr) -%}
  {{ return(adapter.dispatch('is_true', 'storehouse')(expr)) }}
{%- endmacro %}
{% macro default__is_true(expr) %}{{ expr }}{% endmacro %}
{% macro sqlite__is_true(expr) %}({{ expr }} = 1){% endmacro %}

{#- 1-based position of `needle` in `haystack`, 0 when absent (dbt's cross-database position). -#}
{% macro pos_of(needle, haystack) %}{{ dbt.position(needle, haystack) }}{% endmacro %}

{#- The start (00:00 UTC) of a timestamp's day, comparable with the timestamp column itself, so an
    index on it serves a range from that day on. -#}
{% macro utc_day_start(expr) -%}
  {{ return(adapter.dispatch('utc_day_start', 'storehouse')(expr)) }}
{%- endmacro %}
{% macro default__utc_day_start(expr) %}(date_trunc('day', {{ expr }} at time zone 'UTC') at time zone 'UTC'){% endmacro %}
{% macro sqlite__utc_day_start(expr) %}date({{ expr }}){% endmacro %}

{#- The first day of a date's month (a date on PostgreSQL, 'YYYY-MM-01' text on SQLite). -#}
{% macro month_start(expr) -%}
  {{ return(adapter.dispatch('month_start', 'storehouse')(expr)) }}
{%- endmacro %}
{% macro default__month_start(expr) %}cast(date_trunc('month', {{ expr }}) as date){% endmacro %}
{% macro sqlite__month_start(expr) %}date({{ expr }}, 'start of month'){% endmacro %}

{#- The rows of `relation` (aliased `alias`) of each tenant in `changed` (tenant_id, since) whose
    `column` is at least `start` (an expression of `changed`.since). PostgreSQL: a lateral subquery
    per tenant, so the planner takes the (tenant_id, column) index for each tenant's few rows
    instead of hashing every row of the table; SQLite's nested loop takes the index by itself. -#}
{% macro rows_since(relation, alias, changed, column, start) -%}
  {{ return(adapter.dispatch('rows_since', 'storehouse')(relation, alias, changed, column, start)) }}
{%- endmacro %}
{% macro default__rows_since(relation, alias, changed, column, start) -%}
cross join lateral (
        select * from {{ relation }} {{ alias }}
        where {{ alias }}.tenant_id = {{ changed }}.tenant_id and {{ alias }}.{{ column }} >= {{ start }}
        offset 0  {#- keeps the subquery per tenant (not flattened into one join over the table) #}
    ) {{ alias }}
{%- endmacro %}
{% macro sqlite__rows_since(relation, alias, changed, column, start) -%}
join {{ relation }} {{ alias }}
      on {{ alias }}.tenant_id = {{ changed }}.tenant_id and {{ alias }}.{{ column }} >= {{ start }}
{%- endmacro %}

{#- `create index if not exists` on a model's table, as a post-hook: dbt-postgres's `indexes`
    config has no SQLite counterpart, and SQLite names the schema on the index, not the table.
    An index's name is the schema's: on a full rebuild dbt renames the old table aside (to drop it
    after the post-hooks), so the name is still taken by that table's index and the new table would
    get none; that index is dropped first (its table goes with the build). -#}
{% macro index_on(relation, name, columns) -%}
  {%- if execute -%}
    {%- set owner = run_query(adapter.dispatch('index_owner', 'storehouse')(relation, name)) -%}
    {%- if owner.rows and owner.rows[0][0] | lower != relation.identifier | lower -%}
      {%- do run_query(adapter.dispatch('drop_index', 'storehouse')(relation, name)) -%}
    {%- endif -%}
  {%- endif -%}
  {{ return(adapter.dispatch('index_on', 'storehouse')(relation, name, columns)) }}
{%- endmacro %}
{% macro default__index_on(relation, name, columns) -%}
create index if not exists {{ name }} on {{ relation }} ({{ columns | join(', ') }})
{%- endmacro %}
{% macro sqlite__index_on(relation, name, columns) -%}
create index if not exists "{{ relation.schema }}"."{{ name }}" on "{{ relation.identifier }}" ({{ columns | join(', ') }})
{%- endmacro %}
{% macro default__index_owner(relation, name) -%}
select tablename from pg_indexes where schemaname = '{{ relation.schema }}' and indexname = '{{ name }}'
{%- endmacro %}
{% macro sqlite__index_owner(relation, name) -%}
select tbl_name from "{{ relation.schema }}".sqlite_master where type = 'index' and name = '{{ name }}'
{%- endmacro %}
{% macro default__drop_index(relation, name) %}drop index if exists "{{ relation.schema }}"."{{ name }}"{% endmacro %}
{% macro sqlite__drop_index(relation, name) %}drop index if exists "{{ relation.schema }}"."{{ name }}"{% endmacro %}

{#- Today's date (UTC). -#}
{% macro utc_today() -%}
  {{ return(adapter.dispatch('utc_today', 'storehouse')()) }}
{%- endmacro %}
{% macro default__utc_today() %}cast((now() at time zone 'UTC') as date){% endmacro %}
{% macro sqlite__utc_today() %}date('now'){% endmacro %}

{#- A 'YYYY-MM-DD' text as a date (refused unless it is one: it comes from a dbt var). -#}
{% macro date_literal(text) -%}
  {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', text | string) -%}
    {{ exceptions.raise_compiler_error("not a YYYY-MM-DD date: " ~ text) }}
  {%- endif -%}
  {{ return(adapter.dispatch('date_literal', 'storehouse')(text)) }}
{%- endmacro %}
{% macro default__date_literal(text) %}cast('{{ text }}' as date){% endmacro %}
{% macro sqlite__date_literal(text) %}date('{{ text }}'){% endmacro %}

{#- Whole days from date `start` to date `end` (negative when `end` is earlier). -#}
{% macro days_between(start, end) -%}
  {{ return(adapter.dispatch('days_between', 'storehouse')(start, end)) }}
{%- endmacro %}
{% macro default__days_between(start, end) %}({{ end }} - {{ start }}){% endmacro %}
{% macro sqlite__days_between(start, end) %}cast(julianday({{ end }}) - julianday({{ start }}) as integer){% endmacro %}

{#- An amount computed from amounts (a difference of sums), kept to the warehouse's four places:
    exact NUMERIC(18, 4) on PostgreSQL; on SQLite, whose arithmetic is in doubles, rounded to four
    places so that 110.1 - 10.1 reads 100.0, not 99.99999999999999. -#}
{% macro money_of(expr) -%}
  {{ return(adapter.dispatch('money_of', 'storehouse')(expr)) }}
{%- endmacro %}
{% macro default__money_of(expr) %}cast({{ expr }} as numeric(18, 4)){% endmacro %}
{% macro sqlite__money_of(expr) %}round({{ expr }}, 4){% endmacro %}

{#- The time a full-table mart reads its live source up to (the build's own now, UTC): rows that
    arrive while the marts build (checkouts, provider calls) are left for the next build, and its
    reconciliation tests read the source up to the same time (`money_matches` with `cutoff`), so a
    row written between a model's build and its test is not a mismatch. -#}
{% macro build_cutoff() -%}
  {{ return(adapter.dispatch('build_cutoff', 'storehouse')()) }}
{%- endmacro %}
{% macro default__build_cutoff() %}now(){% endmacro %}
{% macro sqlite__build_cutoff() %}strftime('%Y-%m-%d %H:%M:%f', 'now'){% endmacro %}
