package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/config"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestPrecedence(t *testing.T) {
	dotenv := filepath.Join(t.TempDir(), ".env")
	os.WriteFile(dotenv, []byte("# comment\nPORT=4000\nMAX_MEMORY=256\nexport NIMBUS_DATA_DIR=\"/from/dotenv\"\nMAX_EXECUTION_TIME=1000\n"), 0o644)
	c, err := config.Load(env(map[string]string{"PORT": "5000", "MAX_EXECUTION_TIME": "2000"}), dotenv, []string{"--port", "6000"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 6000 {
		t.Errorf("port %d: flag should win", c.Port)
	}
	if c.DefaultTimeoutMs != 2000 {
		t.Errorf("timeout %d: environment should beat .env", c.DefaultTimeoutMs)
	}
	if c.DefaultMemoryMB != 256 || c.DataDir != "/from/dotenv" {
		t.Errorf(".env not applied: %+v", c)
	}
}

func TestDefaults(t *testing.T) {
	c, err := config.Load(env(nil), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 3000 || c.Host != "127.0.0.1" || c.DefaultTimeoutMs != 30000 || c.DefaultMemoryMB != 128 ||
		c.DataDir != "./data" || c.QueueTimeout != 5*time.Second || c.KeepAlive != 10*time.Minute || c.Retention != 10000 ||
		c.MetricsRetention != 7*24*time.Hour || !c.Adaptive {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestKeepAliveIsAdaptiveOrFixed(t *testing.T) {
	for v, want := range map[string]struct {
		adaptive bool
		d        time.Duration
	}{
		"adaptive": {true, 10 * time.Minute},
		"Adaptive": {true, 10 * time.Minute},
		"90s":      {false, 90 * time.Second},
		"1500":     {false, 1500 * time.Millisecond},
	} {
		c, err := config.Load(env(map[string]string{"NIMBUS_KEEP_ALIVE": v}), "", nil)
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if c.Adaptive != want.adaptive || c.KeepAlive != want.d {
			t.Errorf("NIMBUS_KEEP_ALIVE=%s: adaptive %v keep-alive %v, want %v %v", v, c.Adaptive, c.KeepAlive, want.adaptive, want.d)
		}
	}
	if _, err := config.Load(env(map[string]string{"NIMBUS_KEEP_ALIVE": "sometimes"}), "", nil); err == nil {
		t.Error("NIMBUS_KEEP_ALIVE=sometimes accepted")
	}
}

func TestRefusesPublicBindWithoutKey(t *testing.T) {
	_, err := config.Load(env(map[string]string{"NIMBUS_HOST": "0.0.0.0"}), "", nil)
	if err == nil || !strings.Contains(err.Error(), "NIMBUS_API_KEY") {
		t.Fatalf("err = %v, want a refusal naming NIMBUS_API_KEY", err)
	}
	if _, err := config.Load(env(map[string]string{"NIMBUS_HOST": "0.0.0.0", "NIMBUS_API_KEY": "k"}), "", nil); err != nil {
		t.Fatalf("with a key: %v", err)
	}
	if _, err := config.Load(env(map[string]string{"NIMBUS_HOST": "0.0.0.0"}), "", []string{"--insecure"}); err != nil {
		t.Fatalf("with --insecure: %v", err)
	}
	for _, h := range []string{"127.0.0.1", "::1", "localhost", "127.0.0.5"} {
		if !config.IsLoopback(h) {
			t.Errorf("%s is loopback", h)
		}
	}
}

func TestBadValuesNamed(t *testing.T) {
	_, err := config.Load(env(map[string]string{"MAX_MEMORY": "lots", "NIMBUS_QUEUE_TIMEOUT": "soon"}), "", nil)
	if err == nil || !strings.Contains(err.Error(), "MAX_MEMORY") || !strings.Contains(err.Error(), "NIMBUS_QUEUE_TIMEOUT") {
		t.Fatalf("err = %v, want both bad settings named", err)
	}
}

func TestMetricsRetention(t *testing.T) {
	c, err := config.Load(env(map[string]string{"NIMBUS_METRICS_RETENTION": "48h"}), "", nil)
	if err != nil || c.MetricsRetention != 48*time.Hour {
		t.Fatalf("NIMBUS_METRICS_RETENTION=48h: %v, %v", c.MetricsRetention, err)
	}
	for _, bad := range []string{"0", "-1h", "a week"} {
		if _, err := config.Load(env(map[string]string{"NIMBUS_METRICS_RETENTION": bad}), "", nil); err == nil ||
			!strings.Contains(err.Error(), "NIMBUS_METRICS_RETENTION") {
			t.Errorf("NIMBUS_METRICS_RETENTION=%s: err %v, want it named", bad, err)
		}
	}
}

func TestStoreSettings(t *testing.T) {
	c, err := config.Load(env(map[string]string{"MONGODB_URI": "mongodb://db:27017/prod", "NIMBUS_RECORD_BUFFER": "500"}), "", nil)
	if err != nil || c.MongoURI != "mongodb://db:27017/prod" || c.RecordBuffer != 500 {
		t.Fatalf("MONGODB_URI and NIMBUS_RECORD_BUFFER: %+v, %v", c, err)
	}
	if c, _ := config.Load(env(nil), "", nil); c.RecordBuffer != 1<<16 || c.MongoURI != "" {
		t.Errorf("defaults: record buffer %d, MongoDB URI %q", c.RecordBuffer, c.MongoURI)
	}
	if _, err := config.Load(env(map[string]string{"NIMBUS_RECORD_BUFFER": "0"}), "", nil); err == nil ||
		!strings.Contains(err.Error(), "NIMBUS_RECORD_BUFFER") {
		t.Errorf("NIMBUS_RECORD_BUFFER=0: err %v, want it named", err)
	}
}

func TestFreezeAndRecordBytes(t *testing.T) {
	c, err := config.Load(env(nil), "", nil)
	if err != nil || c.FreezeAfter != 100*time.Millisecond || c.RecordBufferBytes != 256<<20 {
		t.Fatalf("defaults: freeze after %v, record buffer %d bytes, %v", c.FreezeAfter, c.RecordBufferBytes, err)
	}
	c, err = config.Load(env(map[string]string{"NIMBUS_FREEZE_AFTER": "0", "NIMBUS_RECORD_BUFFER_BYTES": "1048576"}), "", nil)
	if err != nil || c.FreezeAfter != 0 || c.RecordBufferBytes != 1<<20 {
		t.Fatalf("NIMBUS_FREEZE_AFTER=0: %v, NIMBUS_RECORD_BUFFER_BYTES=1MiB: %d, %v", c.FreezeAfter, c.RecordBufferBytes, err)
	}
	if _, err := config.Load(env(map[string]string{"NIMBUS_RECORD_BUFFER_BYTES": "1000"}), "", nil); err == nil ||
		!strings.Contains(err.Error(), "NIMBUS_RECORD_BUFFER_BYTES") {
		t.Errorf("NIMBUS_RECORD_BUFFER_BYTES=1000: err %v, want it named", err)
	}
}

func TestLookupSeesDotEnv(t *testing.T) {
	dotenv := filepath.Join(t.TempDir(), ".env")
	os.WriteFile(dotenv, []byte("NIMBUS_SANDBOX_STRICT=1\nNIMBUS_PYTHON=/from/dotenv\n"), 0o644)
	c, err := config.Load(env(map[string]string{"NIMBUS_PYTHON": "/from/env"}), dotenv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Lookup("NIMBUS_SANDBOX_STRICT"); v != "1" {
		t.Errorf("a driver setting in .env reads %q, want 1", v)
	}
	if v, _ := c.Lookup("NIMBUS_PYTHON"); v != "/from/env" {
		t.Errorf("the environment should beat .env: %q", v)
	}
}

// The usual dotenv syntax: inline comments, quotes, export, blank lines.
func TestDotEnvSyntax(t *testing.T) {
	dotenv := filepath.Join(t.TempDir(), ".env")
	content := `# Nimbus settings
MAX_MEMORY=256 # MB

export PORT=4000
MAX_EXECUTION_TIME="1500"   # ms, quoted
NIMBUS_DATA_DIR='/srv/nimbus data'
NIMBUS_API_KEY='s3cr3t#not-a-comment $NOT_EXPANDED'
NIMBUS_LOG_LEVEL = debug
MONGODB_URI=mongodb://db:27017/nimbus#x
NIMBUS_PYTHON="/opt/py # 3/bin/python3"
`
	if err := os.WriteFile(dotenv, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(env(nil), dotenv, nil)
	if err != nil {
		t.Fatalf("a .env in the usual syntax: %v", err)
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"inline comment", c.DefaultMemoryMB, 256},
		{"export prefix", c.Port, 4000},
		{"double quotes and comment", c.DefaultTimeoutMs, 1500},
		{"single quotes keep spaces", c.DataDir, "/srv/nimbus data"},
		{"single quotes are literal", c.APIKey, "s3cr3t#not-a-comment $NOT_EXPANDED"},
		{"spaces around =", c.LogLevel, "debug"},
		{"# without a space before it is the value's", c.MongoURI, "mongodb://db:27017/nimbus#x"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if v, _ := c.Lookup("NIMBUS_PYTHON"); v != "/opt/py # 3/bin/python3" {
		t.Errorf("a # inside double quotes: Lookup gives %q", v)
	}
}

// The environment and flags still beat a .env written in any syntax.
func TestDotEnvSyntaxKeepsPrecedence(t *testing.T) {
	dotenv := filepath.Join(t.TempDir(), ".env")
	os.WriteFile(dotenv, []byte("export MAX_MEMORY=256 # MB\nPORT='4000' # quoted\n"), 0o644)
	c, err := config.Load(env(map[string]string{"MAX_MEMORY": "512"}), dotenv, []string{"--port", "6000"})
	if err != nil {
		t.Fatal(err)
	}
	if c.DefaultMemoryMB != 512 || c.Port != 6000 {
		t.Errorf("memory %d port %d: want the environment's 512 and the flag's 6000", c.DefaultMemoryMB, c.Port)
	}
}

func TestDotEnvErrorNamesFile(t *testing.T) {
	dotenv := filepath.Join(t.TempDir(), ".env")
	os.WriteFile(dotenv, []byte("NIMBUS_API_KEY=\"unterminated\n"), 0o644)
	if _, err := config.Load(env(nil), dotenv, nil); err == nil || !strings.Contains(err.Error(), dotenv) {
		t.Errorf("err = %v, want one naming %s", err, dotenv)
	}
}

func TestAllowedHostsAndOrigins(t *testing.T) {
	c, err := config.Load(env(map[string]string{
		"NIMBUS_ALLOWED_HOSTS":   " nimbus.example.com, Proxy.Example:8443 ,,",
		"NIMBUS_ALLOWED_ORIGINS": "https://nimbus.example.com,http://localhost:5173",
	}), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.AllowedHosts, " "); got != "nimbus.example.com proxy.example:8443" {
		t.Errorf("AllowedHosts %q", got)
	}
	if got := strings.Join(c.AllowedOrigins, " "); got != "https://nimbus.example.com http://localhost:5173" {
		t.Errorf("AllowedOrigins %q", got)
	}
	if c, _ := config.Load(env(nil), "", nil); c.AllowedHosts != nil || c.AllowedOrigins != nil {
		t.Errorf("defaults: %q %q, want none beyond the server's own", c.AllowedHosts, c.AllowedOrigins)
	}
	for _, bad := range []string{"nimbus.example.com", "ftp://x", "https://x/path"} {
		if _, err := config.Load(env(map[string]string{"NIMBUS_ALLOWED_ORIGINS": bad}), "", nil); err == nil || !strings.Contains(err.Error(), "NIMBUS_ALLOWED_ORIGINS") {
			t.Errorf("NIMBUS_ALLOWED_ORIGINS=%s: err %v, want it named", bad, err)
		}
	}
}

func TestNATSSettings(t *testing.T) {
	if c, err := config.Load(env(nil), "", nil); err != nil || c.NATSURL != "" || c.NATSCreds != "" || c.NATSUser != "" || c.NATSPassword != "" {
		t.Fatalf("default is the embedded NATS: %+v, %v", c, err)
	}
	c, err := config.Load(env(map[string]string{
		"NIMBUS_NATS_URL": "nats://a:4222,nats://b:4222", "NIMBUS_NATS_USER": "nimbus", "NIMBUS_NATS_PASSWORD": "pw",
	}), "", nil)
	if err != nil || c.NATSURL != "nats://a:4222,nats://b:4222" || c.NATSUser != "nimbus" || c.NATSPassword != "pw" {
		t.Fatalf("external NATS with user and password: %+v, %v", c, err)
	}
	c, err = config.Load(env(map[string]string{"NIMBUS_NATS_URL": "tls://nats.example.com:4222", "NIMBUS_NATS_CREDS": "/etc/nimbus.creds"}), "", nil)
	if err != nil || c.NATSCreds != "/etc/nimbus.creds" {
		t.Fatalf("external NATS with a creds file: %+v, %v", c, err)
	}
	for name, bad := range map[string]map[string]string{
		"not a URL":             {"NIMBUS_NATS_URL": "http://user:hunter2@nats:4222"},
		"no host":               {"NIMBUS_NATS_URL": "nats://"},
		"credentials, no URL":   {"NIMBUS_NATS_USER": "nimbus", "NIMBUS_NATS_PASSWORD": "pw"},
		"creds file, no URL":    {"NIMBUS_NATS_CREDS": "/etc/nimbus.creds"},
		"creds file and a user": {"NIMBUS_NATS_URL": "nats://a:4222", "NIMBUS_NATS_CREDS": "/etc/nimbus.creds", "NIMBUS_NATS_USER": "nimbus"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := config.Load(env(bad), "", nil)
			if err == nil || !strings.Contains(err.Error(), "NIMBUS_NATS_") {
				t.Fatalf("err %v, want the setting named", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error repeats the password: %v", err)
			}
		})
	}
}

func TestLambdaSettings(t *testing.T) {
	if c, err := config.Load(env(nil), "", nil); err != nil || c.LambdaRegion != "us-east-1" || c.LambdaAccount != "000000000000" {
		t.Fatalf("defaults: %q %q, %v", c.LambdaRegion, c.LambdaAccount, err)
	}
	c, err := config.Load(env(map[string]string{"NIMBUS_LAMBDA_REGION": "eu-west-3", "NIMBUS_LAMBDA_ACCOUNT": "123456789012"}), "", nil)
	if err != nil || c.LambdaRegion != "eu-west-3" || c.LambdaAccount != "123456789012" {
		t.Fatalf("set: %q %q, %v", c.LambdaRegion, c.LambdaAccount, err)
	}
	for k, bad := range map[string]string{"NIMBUS_LAMBDA_REGION": "Mars:1", "NIMBUS_LAMBDA_ACCOUNT": "12345"} {
		if _, err := config.Load(env(map[string]string{k: bad}), "", nil); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: err %v, want it named", k, bad, err)
		}
	}
}
