// Command anchor does the work of `ciguard check` with upstream's Go evaluator
// (k8s.io/pod-security-admission/policy), so that the two can be timed side by side on
// the same machine: it reads every *.yaml, *.yml and *.json file under the given
// directories (sorted), decodes each as a Pod (sigs.k8s.io/yaml, as kubectl reads
// manifests), evaluates it at restricted/latest on every core, and prints one line per
// pod in input order, as `ciguard check` does. Exit 1 when any pod is denied.
package main

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: anchor DIR|FILE...")
		os.Exit(2)
	}
	var files []string
	for _, root := range os.Args[1:] {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch filepath.Ext(path) {
			case ".yaml", ".yml", ".json":
				if !d.IsDir() {
					files = append(files, path)
				}
			}
			return nil
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(2)
		}
	}
	sort.Strings(files)

	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	target := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}

	lines := make([]string, len(files))
	denied := make([]bool, len(files))
	errs := make([]error, len(files))
	next := make(chan int, 64)
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				data, err := os.ReadFile(files[i])
				if err != nil {
					errs[i] = err
					continue
				}
				var pod corev1.Pod
				if err := yaml.Unmarshal(data, &pod); err != nil {
					errs[i] = fmt.Errorf("%s: %w", files[i], err)
					continue
				}
				result := policy.AggregateCheckResults(evaluator.EvaluatePod(target, &pod.ObjectMeta, &pod.Spec))
				verdict := "allowed"
				if !result.Allowed {
					denied[i] = true
					verdict = fmt.Sprintf("violates PodSecurity %q: %s",
						api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}.String(),
						result.ForbiddenDetail())
				}
				lines[i] = fmt.Sprintf("%s#0 %s/%s: %s\n", files[i], pod.Kind, pod.Name, verdict)
			}
		}()
	}
	for i := range files {
		next <- i
	}
	close(next)
	wg.Wait()

	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	code := 0
	for i, line := range lines {
		if errs[i] != nil {
			out.Flush()
			fmt.Fprintln(os.Stderr, "error:", strings.TrimSpace(errs[i].Error()))
			os.Exit(2)
		}
		out.WriteString(line)
		if denied[i] {
			code = 1
		}
	}
	out.Flush()
	os.Exit(code)
}
