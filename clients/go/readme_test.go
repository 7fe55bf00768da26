// SPDX-License-Identifier: Apache-2.0

package swarmq

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestReadmeExample builds and runs the README's Go example ("From your
// language") as written, against swarmq on its embedded broker (the
// example uses the default topics), with this module in place of the
// published one.
func TestReadmeExample(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(srcDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- example: go [^\n]*\n```go\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no Go example (<!-- example: go ... --> then ```go)")
	}
	code := string(m[1])
	if !strings.Contains(code, `"127.0.0.1:9092"`) {
		t.Fatal("the README's Go example does not connect to 127.0.0.1:9092")
	}
	bootstrap := embeddedSwarmq(t)
	dir := t.TempDir()
	here, _ := os.Getwd()
	gomod := "module readme\n\ngo 1.26.0\n\nrequire github.com/swarmq/swarmq/clients/go v0.0.0\n\n" +
		"replace github.com/swarmq/swarmq/clients/go => " + here + "\n"
	sum, _ := os.ReadFile("go.sum")
	for name, data := range map[string]string{
		"main.go": strings.Replace(code, `"127.0.0.1:9092"`, `"`+bootstrap+`"`, 1),
		"go.mod":  gomod, "go.sum": string(sum)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "run", "-mod=mod", ".")
	cmd.Dir = dir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run of the README example: %v\n%s", err, out)
	}
	want := "SUCCEEDED " + hexSHA([]byte("hello")) + "\n"
	if !strings.HasSuffix(string(out), want) {
		t.Fatalf("README example printed %q, want %q", out, want)
	}
	t.Logf("README example built and ran in %v", time.Since(start))
}
