#!/usr/bin/env node
import "../dist/lxr.js";
