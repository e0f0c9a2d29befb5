package storagetest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// Every method of storage.Storage is called by the conformance suite, so
// that a backend, or a change of SQL, has every method under test.
func TestEveryStorageMethodIsCalled(t *testing.T) {
	fset := token.NewFileSet()
	methods := map[string]bool{}
	src, err := parser.ParseFile(fset, "../storage.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The interfaces of storage.go: Storage and those it embeds.
	ifaces := map[string]*ast.InterfaceType{}
	ast.Inspect(src, func(n ast.Node) bool {
		if ts, ok := n.(*ast.TypeSpec); ok {
			if it, ok := ts.Type.(*ast.InterfaceType); ok {
				ifaces[ts.Name.Name] = it
			}
		}
		return true
	})
	var collect func(name string)
	collect = func(name string) {
		it := ifaces[name]
		if it == nil {
			t.Fatalf("no interface %s in storage.go", name)
		}
		for _, f := range it.Methods.List {
			switch typ := f.Type.(type) {
			case *ast.FuncType:
				for _, n := range f.Names {
					methods[n.Name] = false
				}
			case *ast.Ident:
				collect(typ.Name)
			}
		}
	}
	collect("Storage")
	files, _ := filepath.Glob("*.go")
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
					if _, known := methods[sel.Sel.Name]; known {
						methods[sel.Sel.Name] = true
					}
				}
			}
			return true
		})
	}
	if len(methods) < 90 {
		t.Fatalf("found only %d methods of storage.Storage: the scan is broken", len(methods))
	}
	for m, called := range methods {
		if !called {
			t.Errorf("storage.Storage.%s is not called by the conformance suite", m)
		}
	}
}
