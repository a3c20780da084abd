CREATE TABLE deliveries (
	id INTEGER NOT NULL, 
	edition_id INTEGER NOT NULL, 
	subscriber_id INTEGER, 
	recipient VARCHAR(320) NOT NULL, 
	status VARCHAR(10) NOT NULL, 
	message_id VARCHAR(255) NOT NULL, 
	attempts INTEGER NOT NULL, 
	sent_at DATETIME, 
	error TEXT, 
	smtp_code INTEGER, 
	first_attempt DATETIME, 
	next_attempt DATETIME, 
	updated_at DATETIME, 
	claim VARCHAR(64), 
	PRIMARY KEY (id), 
	CONSTRAINT deliveries_edition_subscriber UNIQUE (edition_id, subscriber_id), 
	FOREIGN KEY(edition_id) REFERENCES editions (id) ON DELETE CASCADE, 
	FOREIGN KEY(subscriber_id) REFERENCES subscribers (id) ON DELETE SET NULL
);
CREATE TABLE editions (
	id INTEGER NOT NULL, 
	date DATE NOT NULL, 
	built_at DATETIME NOT NULL, 
	payload TEXT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (date)
);
CREATE TABLE feeds (
	id INTEGER NOT NULL, 
	url VARCHAR(2048) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	section VARCHAR(20) NOT NULL, 
	weight FLOAT NOT NULL, 
	active BOOLEAN NOT NULL, 
	etag VARCHAR(1024), 
	last_modified VARCHAR(128), 
	last_attempt DATETIME, 
	last_success DATETIME, 
	last_status INTEGER, 
	last_error TEXT, 
	consecutive_failures INTEGER NOT NULL, 
	last_item_count INTEGER NOT NULL, 
	origin VARCHAR(10) NOT NULL, 
	config_url VARCHAR(2048), 
	next_attempt DATETIME, 
	gone_at DATETIME, 
	fetch_count INTEGER NOT NULL, 
	mean_response_ms FLOAT, 
	is_primary BOOLEAN NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (url)
);
CREATE TABLE items (
	id INTEGER NOT NULL, 
	feed_id INTEGER NOT NULL, 
	"key" VARCHAR(2048) NOT NULL, 
	title TEXT NOT NULL, 
	link VARCHAR(2048) NOT NULL, 
	summary_text TEXT NOT NULL, 
	summary_html TEXT NOT NULL, 
	published DATETIME NOT NULL, 
	first_seen DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT items_feed_key UNIQUE (feed_id, "key"), 
	FOREIGN KEY(feed_id) REFERENCES feeds (id) ON DELETE CASCADE
);
CREATE TABLE leases (
	name VARCHAR(64) NOT NULL, 
	holder VARCHAR(200) NOT NULL, 
	taken_at DATETIME NOT NULL, 
	expires_at DATETIME NOT NULL, 
	PRIMARY KEY (name)
);
CREATE TABLE meta (
	"key" VARCHAR(64) NOT NULL, 
	value TEXT NOT NULL, 
	PRIMARY KEY ("key")
);
INSERT INTO "meta" VALUES('schema_version','11');
CREATE TABLE scheduler_jobs (
	id VARCHAR(191) NOT NULL, 
	next_run_time FLOAT, 
	job_state BLOB NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE subscriber_changes (
	id INTEGER NOT NULL, 
	subscriber_id INTEGER NOT NULL, 
	at DATETIME NOT NULL, 
	state VARCHAR(12) NOT NULL, 
	why TEXT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(subscriber_id) REFERENCES subscribers (id) ON DELETE CASCADE
);
CREATE TABLE subscribers (
	id INTEGER NOT NULL, 
	email VARCHAR(320) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	active BOOLEAN NOT NULL, 
	created_at DATETIME NOT NULL, 
	unsubscribed_at DATETIME, 
	watchlist TEXT NOT NULL, 
	email_key VARCHAR(320) NOT NULL, 
	state VARCHAR(12) NOT NULL, 
	public_id VARCHAR(32) NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT subscribers_email UNIQUE (email)
);
CREATE TABLE title_embeddings (
	digest VARCHAR(64) NOT NULL, 
	vector BLOB NOT NULL, 
	PRIMARY KEY (digest)
);
CREATE UNIQUE INDEX subscribers_email_key ON subscribers (email_key);
CREATE UNIQUE INDEX subscribers_public_id ON subscribers (public_id);
CREATE INDEX ix_items_published ON items (published);
CREATE INDEX deliveries_status ON deliveries (edition_id, status);
CREATE INDEX deliveries_queue ON deliveries (edition_id, status, id);
CREATE INDEX deliveries_claim ON deliveries (claim);
CREATE INDEX ix_subscriber_changes_subscriber_id ON subscriber_changes (subscriber_id);
CREATE INDEX ix_scheduler_jobs_next_run_time ON scheduler_jobs (next_run_time);
