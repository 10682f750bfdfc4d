-- warmcache live mode: the /dashboard section.
--
-- Query parameters: today (DATE, UTC) and top_products (INT64).
-- {{transactions}} and {{products}} are replaced by the configured tables.
--
-- One row per item, told apart by `kind`:
--   kpi       key = 'today', '7d' or '30d' (today, the 7 and 30 days ending today)
--   hour      hour = 0..23, today's hours that had sales
--   day       day = each of the 30 days ending today that had sales
--   top       key = product_id, the best sellers of the 30 days (name, category, units)
--   category  category = each category sold in the 30 days
-- Columns: kind, key, day, hour, name, category, revenue (NUMERIC),
-- transactions, customers, units (INT64). Missing hours and days are zeros.
WITH tx AS (
  SELECT
    transaction_id,
    customer_id,
    product_id,
    quantity,
    amount,
    DATE(created_at) AS day,
    EXTRACT(HOUR FROM created_at) AS hour
  FROM {{transactions}}
  WHERE created_at >= TIMESTAMP(DATE_SUB(@today, INTERVAL 29 DAY))
    AND created_at < TIMESTAMP(DATE_ADD(@today, INTERVAL 1 DAY))
),
tx_products AS (
  SELECT
    tx.*,
    IFNULL(p.name, tx.product_id) AS name,
    IFNULL(p.category, 'Uncategorized') AS category
  FROM tx
  LEFT JOIN {{products}} AS p ON p.product_id = tx.product_id
),
top AS (
  SELECT
    product_id,
    ANY_VALUE(name) AS name,
    ANY_VALUE(category) AS category,
    SUM(amount) AS revenue,
    COUNT(DISTINCT transaction_id) AS transactions,
    SUM(quantity) AS units
  FROM tx_products
  GROUP BY product_id
  ORDER BY revenue DESC, product_id
  LIMIT @top_products
)
SELECT
  'kpi' AS kind,
  'today' AS key,
  CAST(NULL AS DATE) AS day,
  CAST(NULL AS INT64) AS hour,
  CAST(NULL AS STRING) AS name,
  CAST(NULL AS STRING) AS category,
  IFNULL(SUM(amount), 0) AS revenue,
  COUNT(DISTINCT transaction_id) AS transactions,
  COUNT(DISTINCT customer_id) AS customers,
  IFNULL(SUM(quantity), 0) AS units
FROM tx
WHERE day = @today
UNION ALL
SELECT 'kpi', '7d', NULL, NULL, NULL, NULL,
  IFNULL(SUM(amount), 0), COUNT(DISTINCT transaction_id),
  COUNT(DISTINCT customer_id), IFNULL(SUM(quantity), 0)
FROM tx
WHERE day >= DATE_SUB(@today, INTERVAL 6 DAY)
UNION ALL
SELECT 'kpi', '30d', NULL, NULL, NULL, NULL,
  IFNULL(SUM(amount), 0), COUNT(DISTINCT transaction_id),
  COUNT(DISTINCT customer_id), IFNULL(SUM(quantity), 0)
FROM tx
UNION ALL
SELECT 'hour', NULL, NULL, hour, NULL, NULL,
  SUM(amount), COUNT(DISTINCT transaction_id),
  COUNT(DISTINCT customer_id), SUM(quantity)
FROM tx
WHERE day = @today
GROUP BY hour
UNION ALL
SELECT 'day', NULL, day, NULL, NULL, NULL,
  SUM(amount), COUNT(DISTINCT transaction_id),
  COUNT(DISTINCT customer_id), SUM(quantity)
FROM tx
GROUP BY day
UNION ALL
SELECT 'top', product_id, NULL, NULL, name, category,
  revenue, transactions, NULL, units
FROM top
UNION ALL
SELECT 'category', NULL, NULL, NULL, NULL, category,
  SUM(amount), COUNT(DISTINCT transaction_id),
  COUNT(DISTINCT customer_id), SUM(quantity)
FROM tx_products
GROUP BY category
