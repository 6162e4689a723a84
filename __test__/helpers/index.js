'use strict';
module.exports = {
  ...require('./raw-client'),
  ...require('./servers'),
  ...require('./compare'),
  ...require('./fixtures'),
};
