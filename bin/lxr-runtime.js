#!/usr/bin/env node
require("../dist/lxr-runtime.js");
