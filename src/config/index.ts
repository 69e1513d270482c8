// The configuration's public face: loadConfig and its result types, the error formatter `dfs`
// prints before exiting 2, the address helpers the transport and the gRPC server share, and the
// settings table for anyone generating documentation from it.

export { AddressError, formatAddress, isWildcardHost, parseAddress, type Address, type ParseAddressOptions } from './address.js';
export { formatConfigErrors, type ConfigError, type SettingSource } from './errors.js';
export { helpText } from './help.js';
export { deriveAdvertiseAddress, loadConfig, type LoadConfigInput, type LoadConfigResult, type NodeConfig } from './load.js';
export { loadConfigFromProcess } from './process.js';
export { defaultRaftPort, logLevels, settingKeys, settings, type LogLevel, type SettingKey } from './settings.js';
