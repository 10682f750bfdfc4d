-- warmcache live mode: the /historical section.
--
-- Query parameters: today (DATE, UTC), days (INT64, 365) and months (INT64, 24).
-- {{transactions}} is replaced by the configured table.
--
-- One row per period that had sales, told apart by `kind`:
--   day    period = each of the `days` days before today (today is not over)
--   month  period = the first day of each of the `months` calendar months
--          ending with this one, counting sales before today only
-- Columns: kind, period (DATE), revenue (NUMERIC), transactions, customers
-- (INT64, distinct within the period). Periods without sales are zeros.
SELECT
  'day' AS kind,
  DATE(created_at) AS period,
  SUM(amount) AS revenue,
  COUNT(DISTINCT transaction_id) AS transactions,
  COUNT(DISTINCT customer_id) AS customers
FROM {{transactions}}
WHERE created_at >= TIMESTAMP(DATE_SUB(@today, INTERVAL @days DAY))
  AND created_at < TIMESTAMP(@today)
GROUP BY period
UNION ALL
SELECT
  'month' AS kind,
  DATE_TRUNC(DATE(created_at), MONTH) AS period,
  SUM(amount) AS revenue,
  COUNT(DISTINCT transaction_id) AS transactions,
  COUNT(DISTINCT customer_id) AS customers
FROM {{transactions}}
WHERE created_at >= TIMESTAMP(DATE_SUB(DATE_TRUNC(@today, MONTH), INTERVAL @months - 1 MONTH))
  AND created_at < TIMESTAMP(@today)
GROUP BY period
