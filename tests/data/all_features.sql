-- A schema touching every DDL feature voltdb_py compiles (used by tests/test_catalog.py).
CREATE TABLE customer (
    id        BIGINT NOT NULL,
    region    VARCHAR(16 BYTES) NOT NULL,
    name      VARCHAR(64) DEFAULT 'anon',
    photo     VARBINARY(256) DEFAULT x'00ff',
    balance   DECIMAL DEFAULT 10.5,
    score     FLOAT DEFAULT -1.25,
    tiny      TINYINT DEFAULT -7,
    small     SMALLINT NULL,
    joined    TIMESTAMP DEFAULT NOW,
    email     VARCHAR(128),            /* a UNIQUE here would need ID in it */
    PRIMARY KEY (id)
);
CREATE ASSUMEUNIQUE INDEX ix_customer_region ON customer (region);  -- a ; inside a comment
PARTITION TABLE customer ON COLUMN id;
CREATE TABLE orders (
    order_id  INTEGER NOT NULL,
    cust_id   BIGINT NOT NULL,
    amount    DECIMAL NOT NULL,
    qty       INT NOT NULL,
    note      VARCHAR(20) DEFAULT 'it''s; fine',
    CONSTRAINT pk_orders PRIMARY KEY (cust_id, order_id),
    ASSUMEUNIQUE (order_id)
);
PARTITION TABLE orders ON COLUMN cust_id;
CREATE INDEX ix_orders_amount ON orders (amount, qty);
CREATE TABLE lookup (k SMALLINT NOT NULL PRIMARY KEY, v VARCHAR UNIQUE);
CREATE VIEW order_totals (cust_id, n, total, max_qty, min_amount)
    AS SELECT cust_id, COUNT(*), SUM(amount), MAX(qty), MIN(amount)
       FROM orders WHERE qty > 0 GROUP BY cust_id;
CREATE VIEW qty_counts AS SELECT qty, COUNT(*) AS cnt, SUM(qty) AS sq FROM orders GROUP BY qty;
CREATE PROCEDURE GetCustomer PARTITION ON TABLE customer COLUMN id AS
    SELECT * FROM customer WHERE id = ?;
CREATE PROCEDURE AddOrder AS INSERT INTO orders VALUES (?, ?, ?, ?, ?);
PARTITION PROCEDURE AddOrder ON TABLE orders COLUMN cust_id PARAMETER 1;
CREATE PROCEDURE Lookup AS SELECT v FROM lookup WHERE k = ?;
