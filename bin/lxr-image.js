#!/usr/bin/env node
require("../dist/lxr-image.js");
