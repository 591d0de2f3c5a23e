package scantest

import (
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"
)

// NegativeCategories names the hard-negative files Negatives writes.
var NegativeCategories = []string{"uuids", "hashes", "images", "integrity", "doc-examples", "placeholders",
	"references", "k8s-placeholders", "code", "typical"}

// Negatives writes files that look like they hold secrets but do not:
// UUIDs, hashes, base64 images, lock-file integrity hashes, documentation
// example keys, placeholders, secret references and code that handles
// credentials. A scanner should report nothing under dir.
func (g *Gen) Negatives(dir string) error {
	files := map[string]string{}
	var b strings.Builder

	for i := range 200 {
		fmt.Fprintf(&b, "request_id: %s\ntrace-id = \"%s\"\n\"sessionId\": \"%s\",\ntoken_id = '%s'\ncorrelation_key: %s\n",
			g.UUID(), g.UUID(), g.UUID(), g.UUID(), g.UUID())
		_ = i
	}
	files["uuids/ids.yaml"] = b.String()
	b.Reset()

	for range 200 {
		fmt.Fprintf(&b, "commit %s\nsha256: %s\nchecksum = \"%s\"\nmd5 %s  file.tar.gz\nimage: ghcr.io/org/app@sha256:%s\nETag: \"%s\"\n",
			g.hex(40), g.hex(64), g.hex(64), g.hex(32), g.hex(64), g.hex(32))
	}
	files["hashes/SHA256SUMS.txt"] = b.String()
	b.Reset()

	img := make([]byte, 3000)
	g.fill(img)
	copy(img, "\x89PNG\r\n\x1a\n")
	fmt.Fprintf(&b, ".logo { background: url(data:image/png;base64,%s); }\n", base64.StdEncoding.EncodeToString(img))
	fmt.Fprintf(&b, "<img src=\"data:image/jpeg;base64,%s\">\n", base64.StdEncoding.EncodeToString(img[:900]))
	files["images/style.css"] = b.String()
	b.Reset()

	for range 100 {
		raw := make([]byte, 64)
		g.fill(raw)
		fmt.Fprintf(&b, "    \"node_modules/%s\": {\n      \"version\": \"1.%d.0\",\n      \"resolved\": \"https://registry.npmjs.org/%s/-/%s-1.0.0.tgz\",\n      \"integrity\": \"sha512-%s\"\n    },\n",
			g.Word(8), g.rng.IntN(9), g.Word(8), g.Word(8), base64.StdEncoding.EncodeToString(raw))
	}
	files["integrity/deps.json"] = "{\n  \"packages\": {\n" + b.String() + "  }\n}\n"
	b.Reset()
	for range 50 {
		raw := make([]byte, 48)
		g.fill(raw)
		fmt.Fprintf(&b, "<script src=\"https://cdn.example.org/lib.js\" integrity=\"sha384-%s\" crossorigin=\"anonymous\"></script>\n", base64.StdEncoding.EncodeToString(raw))
	}
	files["integrity/index.html"] = b.String()
	b.Reset()
	// A real lock file: skipped by name.
	files["integrity/package-lock.json"] = files["integrity/deps.json"]

	files["doc-examples/README.md"] = strings.Join([]string{
		"## Configure AWS",
		"```",
		"aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
		"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"```",
		"Stripe test key from the docs: `sk_test_4eC39HqLyjWDarjtT1zdp7dc`",
		"A JWT looks like eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
		"export GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		"export GITHUB_TOKEN=ghp_16C7e42F292c6912E7710c838347Ae178B4a",
		"SLACK_TOKEN=xoxb-your-bot-token-here",
		"postgres://user:password@localhost:5432/app",
		"DATABASE_URL=postgresql://postgres:postgres@db:5432/postgres",
		"mysql://root:root@127.0.0.1/test",
		"redis://:${REDIS_PASSWORD}@redis:6379/0",
		"https://user:pass@example.com/path",
		"amqp://guest:guest@localhost:5672/",
		"-----BEGIN RSA PRIVATE KEY-----",
		"MIIEpAIBAAKCAQEA...",
		"...",
		"-----END RSA PRIVATE KEY-----",
		"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA...your key here...\n-----END OPENSSH PRIVATE KEY-----",
		"api_key: <your-api-key>",
		"OPENAI_API_KEY=sk-...",
		"Authorization: Bearer <token>",
		"Authorization: Basic dXNlcm5hbWU6cGFzc3dvcmQ=",
		"curl -u admin:admin http://localhost:8080/",
		"heroku_api_key = 00000000-0000-0000-0000-000000000000",
		"AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;EndpointSuffix=example",
		"",
	}, "\n")

	files["placeholders/app.env"] = strings.Join([]string{
		"DB_PASSWORD=changeme", "API_KEY=<your-key>", "SECRET_KEY=REPLACE_ME", "AUTH_TOKEN=your_token_here",
		"PASSWORD=xxxxxxxx", "PASSWORD=********", "CLIENT_SECRET=\"\"", "TOKEN=", "STRIPE_KEY=sk_live_xxxxxxxxxxxxxxxxxxxxxxxx",
		"AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY}", "GITHUB_TOKEN=$GITHUB_TOKEN", "DB_PASS=%DB_PASS%",
		"password=dummy-password-123", "api_key=test-api-key-123456", "secret=fake_secret_value_123", "token=TODO",
		"ENCRYPTION_KEY=insert-your-key-here", "MASTER_KEY=example-master-key-0001", "",
	}, "\n")
	files["placeholders/values.yaml"] = strings.Join([]string{
		"db:", "  password: \"\"", "  existingSecret: db-credentials", "  secretKey: password", "auth:",
		"  token: null", "  apiKey: ~", "  password: \"{{ .Values.global.password }}\"", "  clientSecret: '<CLIENT_SECRET>'", "",
	}, "\n")

	files["references/ci.yml"] = strings.Join([]string{
		"jobs:", "  deploy:", "    env:", "      GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}",
		"      NPM_TOKEN: ${{ secrets.NPM_TOKEN }}", "      AWS_SECRET_ACCESS_KEY: ${{ secrets.AWS_SECRET_ACCESS_KEY }}",
		"      DB_PASSWORD: ${{ vars.DB_PASSWORD }}", "    steps:", "      - run: echo \"//registry.npmjs.org/:_authToken=${NPM_TOKEN}\" > .npmrc",
		"      - run: docker login -u \"$USER\" --password-stdin <<< \"$DOCKER_PASSWORD\"", "",
	}, "\n")
	files["references/main.tf"] = strings.Join([]string{
		"resource \"aws_db_instance\" \"db\" {", "  password = var.db_password",
		"  master_password = data.aws_secretsmanager_secret_version.db.secret_string", "}",
		"variable \"api_token\" {", "  type      = string", "  sensitive = true", "}",
		"provider \"vault\" {", "  token = local.vault_token", "}", "",
	}, "\n")
	files["references/deploy.sh"] = strings.Join([]string{
		"#!/bin/sh", "export DB_PASSWORD=\"$(vault kv get -field=password secret/db)\"",
		"TOKEN=$(cat /var/run/secrets/kubernetes.io/serviceaccount/token)", "mysql -u root -p\"$MYSQL_PASSWORD\" app",
		"PASSWORD=${PASSWORD:-}", "read -rs password", "",
	}, "\n")

	files["k8s-placeholders/secrets.yaml"] = strings.Join([]string{
		"apiVersion: v1", "kind: Secret", "metadata:", "  name: placeholders", "type: Opaque", "data:",
		"  password: " + base64.StdEncoding.EncodeToString([]byte("changeme")),
		"  api-key: " + base64.StdEncoding.EncodeToString([]byte("<your-key>")),
		"  token: " + base64.StdEncoding.EncodeToString([]byte("REPLACE_ME")),
		"  username: " + base64.StdEncoding.EncodeToString([]byte("admin")),
		"  empty: \"\"", "stringData:", "  client-secret: \"${CLIENT_SECRET}\"", "  db-password: \"{{ .Values.db.password }}\"",
		"---", "apiVersion: apps/v1", "kind: Deployment", "metadata:", "  name: app", "spec:", "  template:", "    spec:",
		"      containers:", "        - name: app", "          env:", "            - name: DB_PASSWORD", "              valueFrom:",
		"                secretKeyRef:", "                  name: db", "                  key: password", "",
	}, "\n")

	files["code/auth.go"] = strings.Join([]string{
		"package auth", "", "const tokenHeader = \"X-Auth-Token\"", "const PasswordField = \"password\"",
		"func Login(r *http.Request) error {", "\tpassword := r.FormValue(\"password\")", "\ttoken := r.Header.Get(tokenHeader)",
		"\tif password == \"\" || token == \"\" {", "\t\treturn ErrNoCredentials", "\t}",
		"\tsecret, err := store.Secret(ctx, \"db/password\")", "\tapiKey := cfg.APIKey", "\tmaxTokens := 4096",
		"\tpasswordHash := bcrypt.GenerateFromPassword([]byte(password), 12)", "\ttokenType := \"Bearer\"",
		"\tsecretName: my-app-tls", "\tsecret_key_ref = \"projects/p/secrets/s/versions/latest\"",
		"\ttoken = jwt.New(jwt.SigningMethodHS256)", "\treturn nil", "}", "",
	}, "\n")
	files["code/settings.py"] = strings.Join([]string{
		"import os", "SECRET_KEY = os.environ[\"SECRET_KEY\"]", "password = getpass.getpass()",
		"DATABASES = {\"default\": {\"PASSWORD\": os.getenv(\"DB_PASSWORD\"), \"HOST\": \"db\"}}",
		"api_key = settings.API_KEY", "token_url = \"https://oauth2.googleapis.com/token\"", "password_min_length = 12",
		"AUTH_PASSWORD_VALIDATORS = []", "secret_name = \"prod/db/credentials\"", "",
	}, "\n")

	var typical strings.Builder
	_ = g.TypicalSource(&typical, 256<<10)
	files["typical/service.go"] = typical.String()

	for name, content := range files {
		if err := writeFile(dir, filepath.ToSlash(name), content); err != nil {
			return err
		}
	}
	return nil
}
