// Package e2e holds Latchkey's end-to-end tests: the real server on a real
// database (a SQLite file, and PostgreSQL where the test says so), driven by
// real clients: golang.org/x/oauth2, a cookie-jar client that fills the HTML
// forms by field name, and headless Chromium.
package e2e
