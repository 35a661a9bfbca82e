package reporting

import (
	"os"
	"testing"

	"spine/shared/testenv"
)

// testDB is this package's fresh database (platform schema + reporting's migrations).
var testDB *testenv.Database

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, service, &testDB)) }
