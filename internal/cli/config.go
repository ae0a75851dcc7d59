package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// DefaultConfigPath is berth's configuration file; $BERTH_CONFIG overrides it.
const DefaultConfigPath = "/etc/berth/config.json"

// fileConfig is the part of berth's configuration file read so far, with docker's daemon.json
// key names so an existing setting can be copied over.
type fileConfig struct {
	InsecureRegistries []string `json:"insecure-registries"`
}

// loadConfig reads the configuration file; a missing file is an empty configuration.
func loadConfig() (*fileConfig, error) {
	path := os.Getenv("BERTH_CONFIG")
	if path == "" {
		path = DefaultConfigPath
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &fileConfig{}, nil
	}
	if err != nil {
		return nil, err
	}
	var c fileConfig
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %w (fix the JSON or remove the file)", path, err)
	}
	return &c, nil
}
