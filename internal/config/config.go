package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"
)

// Config is every setting of `nimbus serve`.
type Config struct {
	Port     int    // PORT: HTTP port (3000)
	Host     string // NIMBUS_HOST: address to bind (127.0.0.1)
	DataDir  string // NIMBUS_DATA_DIR: database and instance files (./data)
	MongoURI string // MONGODB_URI: use MongoDB instead of the embedded SQLite

	DefaultTimeoutMs int // MAX_EXECUTION_TIME: default function timeout, ms (30000)
	DefaultMemoryMB  int // MAX_MEMORY: default function memory limit, MB (128)

	APIKey string // NIMBUS_API_KEY: when set, /api calls need "Authorization: Bearer <key>"
	// SecretsKey (NIMBUS_SECRETS_KEY) is the key-encryption key that
	// seals secrets and keys' secrets: 32 bytes, hex or base64. Unset: a
	// key file generated in the data dir. SecretsKeyPrevious
	// (NIMBUS_SECRETS_KEY_PREVIOUS, comma-separated) are the keys it
	// replaced: what they sealed is sealed again at start-up.
	SecretsKey, SecretsKeyPrevious string
	// AuditRetention (NIMBUS_AUDIT_RETENTION, 2160h: 90 days) is how long
	// the audit log keeps an entry.
	AuditRetention time.Duration
	Insecure       bool // --insecure: allow a non-loopback bind without an API key

	// AllowedHosts (NIMBUS_ALLOWED_HOSTS, comma-separated) are the names
	// besides loopback and the bound host that requests may give in Host:
	// "name" (any port), "name:port", or "*" for any. Other Hosts are
	// refused, so that a web page cannot reach the server through a DNS
	// name it controls (DNS rebinding).
	AllowedHosts []string
	// AllowedOrigins (NIMBUS_ALLOWED_ORIGINS, comma-separated) are the web
	// origins ("https://nimbus.example.com", or "*") besides the server's
	// own whose pages may call it; a request with another Origin is
	// refused.
	AllowedOrigins []string

	MaxBodyBytes int64         // NIMBUS_MAX_BODY_BYTES: request body limit (6 MiB)
	QueueTimeout time.Duration // NIMBUS_QUEUE_TIMEOUT: wait for a busy function before 429 (5s)
	// AsyncAckWait (NIMBUS_ASYNC_ACK_WAIT, 30s) is how long an async call
	// held by a server that stopped answering waits before another
	// server (or this one, restarted) runs it again.
	AsyncAckWait time.Duration
	// NIMBUS_KEEP_ALIVE: "adaptive" (the default: each function's keep-alive
	// follows its history of idle times, 10m while it has too little), or a
	// fixed duration. A function's own keepAlive overrides either.
	KeepAlive time.Duration
	Adaptive  bool
	// FreezeAfter (NIMBUS_FREEZE_AFTER, 100ms; 0 never) is how long an
	// instance is idle before it is frozen: what its handler left running
	// stops using CPU until the next call thaws it.
	FreezeAfter  time.Duration
	Retention    int // NIMBUS_RETENTION: executions kept per function (10000)
	RecordBuffer int // NIMBUS_RECORD_BUFFER: records held for an unavailable store, oldest dropped past it (65536)
	// RecordBufferBytes (NIMBUS_RECORD_BUFFER_BYTES, 256 MiB) bounds the
	// bytes those records hold: past it, records arriving keep no event or
	// result, then the oldest are dropped.
	RecordBufferBytes int
	LogLimit          int           // NIMBUS_LOG_LIMIT: bytes of logs per execution (65536)
	ShutdownTimeout   time.Duration // NIMBUS_SHUTDOWN_TIMEOUT: drain time on SIGTERM (30s)
	LogLevel          string        // NIMBUS_LOG_LEVEL: debug, info, warn, error (info)
	// MetricsRetention is how long per-minute metrics are kept in the store
	// (NIMBUS_METRICS_RETENTION, 168h); the last 24 hours are loaded back
	// at start-up.
	MetricsRetention time.Duration

	// Archives (code and layers): NIMBUS_MAX_ARCHIVE_BYTES (50 MiB),
	// NIMBUS_MAX_UNPACKED_BYTES (250 MiB), NIMBUS_MAX_ARCHIVE_FILES (20000).
	MaxArchiveBytes, MaxUnpackedBytes int64
	MaxArchiveFiles                   int
	// Dependency builds: NIMBUS_BUILD_TIMEOUT (10m), NIMBUS_BUILD_MEMORY
	// (MB, 2048), and where packages come from: NIMBUS_PIP_INDEX_URL,
	// NIMBUS_PIP_FIND_LINKS (a directory of wheels, or a URL),
	// NIMBUS_NPM_REGISTRY; Go functions' GOPROXY, NIMBUS_GOPROXY (unset:
	// the server's own GOPROXY, else https://proxy.golang.org,direct),
	// built by the go command NIMBUS_GO (unset: go in PATH, else
	// /usr/local/go/bin/go).
	BuildTimeout                           time.Duration
	BuildMemoryMB                          int
	PipIndexURL, PipFindLinks, NpmRegistry string
	GoProxy, Go                            string

	// NATSURL (NIMBUS_NATS_URL) is an external NATS server or cluster with
	// JetStream ("nats://host:4222", comma-separated for several); unset,
	// Nimbus embeds one, its state under the data dir. NATSCreds
	// (NIMBUS_NATS_CREDS) is a .creds file to log in with, or NATSUser and
	// NATSPassword (NIMBUS_NATS_USER, NIMBUS_NATS_PASSWORD).
	NATSURL, NATSCreds, NATSUser string
	NATSPassword                 string `json:"-"`

	// The Lambda API's ARNs (arn:aws:lambda:{region}:{account}:function:…)
	// name this region and account id: NIMBUS_LAMBDA_REGION (us-east-1)
	// and NIMBUS_LAMBDA_ACCOUNT (000000000000, twelve digits). ARNs of
	// another region or account name no function here, and requests must
	// be signed for this region.
	LambdaRegion, LambdaAccount string

	// Lookup reads a setting as Load did: the environment, then the .env
	// file. Drivers and runtimes read their own settings through it.
	Lookup func(string) (string, bool) `json:"-"`
}

// Default returns the documented defaults.
func Default() Config {
	return Config{
		Port:              3000,
		Host:              "127.0.0.1",
		DataDir:           "./data",
		DefaultTimeoutMs:  30000,
		DefaultMemoryMB:   128,
		MaxBodyBytes:      6 << 20,
		QueueTimeout:      5 * time.Second,
		AsyncAckWait:      30 * time.Second,
		KeepAlive:         10 * time.Minute,
		FreezeAfter:       100 * time.Millisecond,
		Adaptive:          true,
		Retention:         10000,
		RecordBuffer:      1 << 16,
		RecordBufferBytes: 256 << 20,
		LogLimit:          64 << 10,
		ShutdownTimeout:   30 * time.Second,
		LogLevel:          "info",
		MetricsRetention:  7 * 24 * time.Hour,
		AuditRetention:    90 * 24 * time.Hour,
		MaxArchiveBytes:   50 << 20,
		MaxUnpackedBytes:  250 << 20,
		MaxArchiveFiles:   20000,
		BuildTimeout:      10 * time.Minute,
		BuildMemoryMB:     2048,
		LambdaRegion:      "us-east-1",
		LambdaAccount:     "000000000000",
	}
}

// flags are the command-line flags of `nimbus serve`.
type flags struct {
	envFile, host, dataDir *string
	port                   *int
	insecure               *bool
}

func newFlagSet(envFile string) (*flag.FlagSet, flags) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs, flags{
		envFile:  fs.String("env-file", envFile, "read settings from this .env file (a missing file is no error)"),
		port:     fs.Int("port", 0, "HTTP port (PORT, default 3000)"),
		host:     fs.String("host", "", "address to bind (NIMBUS_HOST, default 127.0.0.1)"),
		dataDir:  fs.String("data-dir", "", "data directory: database and instance files (NIMBUS_DATA_DIR, default ./data)"),
		insecure: fs.Bool("insecure", false, "allow binding a non-loopback address without NIMBUS_API_KEY"),
	}
}

// Flags returns the flags Load accepts, with their descriptions and
// defaults, for a command-line parser to show and check; Load parses them
// itself from the arguments it is given.
func Flags() *flag.FlagSet {
	fs, _ := newFlagSet(".env")
	return fs
}

// PrintFlags writes the flags Load accepts, with their descriptions, to w.
func PrintFlags(w io.Writer) {
	fs, _ := newFlagSet(".env")
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// Load builds the configuration: defaults, then the .env file at envFile
// (if it exists), then lookup (the environment), then flags in args. With
// -h or --help in args it returns an error wrapping flag.ErrHelp.
func Load(lookup func(string) (string, bool), envFile string, args []string) (Config, error) {
	fs, fl := newFlagSet(envFile)
	envFileFlag, port, host, dataDir, insecure := fl.envFile, fl.port, fl.host, fl.dataDir, fl.insecure
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("flags: %w", err)
	}
	dotenv, err := ReadEnvFile(*envFileFlag)
	if err != nil {
		return Config{}, err
	}
	get := func(k string) (string, bool) {
		if v, ok := lookup(k); ok {
			return v, true
		}
		v, ok := dotenv[k]
		return v, ok
	}
	c := Default()
	c.Lookup = get
	var errs []error
	str := func(k string, dst *string) {
		if v, ok := get(k); ok && v != "" {
			*dst = v
		}
	}
	num := func(k string, dst *int, lo, hi int) {
		if v, ok := get(k); ok && v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < lo || n > hi {
				errs = append(errs, fmt.Errorf("%s=%q: want a whole number from %d to %d", k, v, lo, hi))
				return
			}
			*dst = n
		}
	}
	dur := func(k string, dst *time.Duration) {
		if v, ok := get(k); ok && v != "" {
			d, err := parseDuration(v)
			if err != nil || d < 0 {
				errs = append(errs, fmt.Errorf("%s=%q: want a duration such as 500ms, 10s or 5m (a bare number is milliseconds)", k, v))
				return
			}
			*dst = d
		}
	}
	num("PORT", &c.Port, 0, 65535)
	str("NIMBUS_HOST", &c.Host)
	str("NIMBUS_DATA_DIR", &c.DataDir)
	str("MONGODB_URI", &c.MongoURI)
	num("MAX_EXECUTION_TIME", &c.DefaultTimeoutMs, 1, 15*60*1000)
	num("MAX_MEMORY", &c.DefaultMemoryMB, 16, 10240)
	str("NIMBUS_API_KEY", &c.APIKey)
	str("NIMBUS_SECRETS_KEY", &c.SecretsKey)
	str("NIMBUS_SECRETS_KEY_PREVIOUS", &c.SecretsKeyPrevious)
	list := func(k string, dst *[]string) {
		if v, ok := get(k); ok {
			for _, item := range strings.Split(v, ",") {
				if item = strings.ToLower(strings.TrimSpace(item)); item != "" {
					*dst = append(*dst, item)
				}
			}
		}
	}
	list("NIMBUS_ALLOWED_HOSTS", &c.AllowedHosts)
	list("NIMBUS_ALLOWED_ORIGINS", &c.AllowedOrigins)
	for _, o := range c.AllowedOrigins {
		if u, err := url.Parse(o); o != "*" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.TrimSuffix(u.Path, "/") != "") {
			errs = append(errs, fmt.Errorf("NIMBUS_ALLOWED_ORIGINS: %q is not an origin such as https://nimbus.example.com", o))
		}
	}
	var body int
	num("NIMBUS_MAX_BODY_BYTES", &body, 1024, 1<<30)
	if body > 0 {
		c.MaxBodyBytes = int64(body)
	}
	dur("NIMBUS_QUEUE_TIMEOUT", &c.QueueTimeout)
	dur("NIMBUS_ASYNC_ACK_WAIT", &c.AsyncAckWait)
	if v, _ := get("NIMBUS_KEEP_ALIVE"); strings.EqualFold(strings.TrimSpace(v), "adaptive") {
		c.Adaptive = true
	} else if v != "" {
		c.Adaptive = false
		dur("NIMBUS_KEEP_ALIVE", &c.KeepAlive)
	}
	num("NIMBUS_RETENTION", &c.Retention, 1, 100_000_000)
	num("NIMBUS_RECORD_BUFFER", &c.RecordBuffer, 1, 1<<24)
	num("NIMBUS_RECORD_BUFFER_BYTES", &c.RecordBufferBytes, 1<<20, 1<<40)
	num("NIMBUS_LOG_LIMIT", &c.LogLimit, 1024, 16<<20)
	dur("NIMBUS_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout)
	dur("NIMBUS_FREEZE_AFTER", &c.FreezeAfter)
	str("NIMBUS_LOG_LEVEL", &c.LogLevel)
	dur("NIMBUS_METRICS_RETENTION", &c.MetricsRetention)
	if c.MetricsRetention <= 0 {
		errs = append(errs, fmt.Errorf("NIMBUS_METRICS_RETENTION: want a positive duration such as 168h"))
	}
	dur("NIMBUS_AUDIT_RETENTION", &c.AuditRetention)
	if c.AuditRetention <= 0 {
		errs = append(errs, fmt.Errorf("NIMBUS_AUDIT_RETENTION: want a positive duration such as 2160h"))
	}
	var archive, unpacked int
	num("NIMBUS_MAX_ARCHIVE_BYTES", &archive, 1024, 1<<30)
	num("NIMBUS_MAX_UNPACKED_BYTES", &unpacked, 1024, 1<<34)
	if archive > 0 {
		c.MaxArchiveBytes = int64(archive)
	}
	if unpacked > 0 {
		c.MaxUnpackedBytes = int64(unpacked)
	}
	num("NIMBUS_MAX_ARCHIVE_FILES", &c.MaxArchiveFiles, 1, 100_000)
	dur("NIMBUS_BUILD_TIMEOUT", &c.BuildTimeout)
	if c.BuildTimeout <= 0 {
		errs = append(errs, fmt.Errorf("NIMBUS_BUILD_TIMEOUT: want a positive duration such as 10m"))
	}
	num("NIMBUS_BUILD_MEMORY", &c.BuildMemoryMB, 64, 1<<20)
	str("NIMBUS_PIP_INDEX_URL", &c.PipIndexURL)
	str("NIMBUS_PIP_FIND_LINKS", &c.PipFindLinks)
	str("NIMBUS_NPM_REGISTRY", &c.NpmRegistry)
	str("NIMBUS_GOPROXY", &c.GoProxy)
	str("NIMBUS_GO", &c.Go)
	str("NIMBUS_NATS_URL", &c.NATSURL)
	str("NIMBUS_NATS_CREDS", &c.NATSCreds)
	str("NIMBUS_NATS_USER", &c.NATSUser)
	str("NIMBUS_NATS_PASSWORD", &c.NATSPassword)
	errs = append(errs, checkNATS(c))
	str("NIMBUS_LAMBDA_REGION", &c.LambdaRegion)
	str("NIMBUS_LAMBDA_ACCOUNT", &c.LambdaAccount)
	if !regionRE.MatchString(c.LambdaRegion) {
		errs = append(errs, fmt.Errorf("NIMBUS_LAMBDA_REGION=%q: want a region name such as us-east-1", c.LambdaRegion))
	}
	if !accountRE.MatchString(c.LambdaAccount) {
		errs = append(errs, fmt.Errorf("NIMBUS_LAMBDA_ACCOUNT=%q: want an account id of twelve digits", c.LambdaAccount))
	}

	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "port":
			c.Port = *port
		case "host":
			c.Host = *host
		case "data-dir":
			c.DataDir = *dataDir
		case "insecure":
			c.Insecure = *insecure
		}
	})
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, c.Check()
}

var (
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z0-9]+)+-[0-9]+$`)
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
)

// Check refuses settings that would be unsafe: a non-loopback bind without
// an API key, unless Insecure.
func (c Config) Check() error {
	if c.APIKey == "" && !c.Insecure && !IsLoopback(c.Host) {
		return fmt.Errorf("refusing to listen on %q without NIMBUS_API_KEY: anyone who can reach it could run code on this machine; set NIMBUS_API_KEY, bind 127.0.0.1, or pass --insecure", c.Host)
	}
	return nil
}

// Addr is the address to listen on.
func (c Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// IsLoopback reports whether host only accepts local connections.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// checkNATS refuses NATS settings that cannot work: an address that is
// not a NATS URL, credentials without an external server to give them
// to, or two ways to log in.
func checkNATS(c Config) error {
	if c.NATSURL == "" {
		if c.NATSCreds != "" || c.NATSUser != "" || c.NATSPassword != "" {
			return fmt.Errorf("NIMBUS_NATS_CREDS, NIMBUS_NATS_USER and NIMBUS_NATS_PASSWORD are for an external NATS: set NIMBUS_NATS_URL too, or unset them to use the embedded one")
		}
		return nil
	}
	for _, u := range strings.Split(c.NATSURL, ",") {
		p, err := url.Parse(strings.TrimSpace(u))
		if err != nil || p.Host == "" || !slices.Contains([]string{"nats", "tls", "ws", "wss"}, p.Scheme) {
			// The value is not repeated: it may hold a password.
			return fmt.Errorf("NIMBUS_NATS_URL: want NATS URLs such as nats://nats.example.com:4222, comma-separated")
		}
	}
	if c.NATSCreds != "" && (c.NATSUser != "" || c.NATSPassword != "") {
		return fmt.Errorf("NIMBUS_NATS_CREDS and NIMBUS_NATS_USER/NIMBUS_NATS_PASSWORD: set one way to log in, not both")
	}
	return nil
}

func parseDuration(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Millisecond, nil
	}
	return time.ParseDuration(v)
}

// ReadEnvFile reads a .env file; a missing file is no error. It takes the
// usual dotenv syntax (github.com/joho/godotenv): KEY=VALUE lines, blank
// lines, # comments on their own line or after a value and a space,
// "export " prefixes, single quotes (literal) and double quotes (\n escapes,
// ${VAR} of variables set earlier in the file). It only parses: the
// process environment is not changed.
func ReadEnvFile(path string) (map[string]string, error) {
	if path == "" {
		return map[string]string{}, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("env file: %w", err)
	}
	defer f.Close()
	env, err := godotenv.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("env file %s: %w", path, err)
	}
	return env, nil
}
