package sqlite

// Exported for the black-box tests.
var (
	Migrate    = migrate
	Migrations = migrations
)
