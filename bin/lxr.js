#!/usr/bin/env node
require("../dist/lxr.js");
