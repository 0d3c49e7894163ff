# Evaluates a Vagrantfile without Vagrant: a stand-in for the Vagrant module
# records every setting the file makes, one `key = value` line each, so the
# tests can check what the VM would be (box, CPUs, memory, provisioning)
# rather than only that the file parses.
#
#   ruby scripts/testdata/vagrant_stub.rb Vagrantfile

# Records calls and assignments under a dotted path such as
# config.vm.provider(virtualbox).cpus.
class Recorder
  def initialize(path, log)
    @path = path
    @log = log
  end

  def method_missing(name, *args, **kw, &blk)
    if name.to_s.end_with?("=")
      @log << "#{@path}.#{name.to_s.chomp("=")} = #{args[0].inspect}"
      return args[0]
    end
    key = "#{@path}.#{name}"
    key += "(#{args.map(&:to_s).join(",")})" unless args.empty?
    @log << "#{key} #{kw.inspect}" unless args.empty? && kw.empty?
    child = Recorder.new(key, @log)
    if blk
      params = [child, Recorder.new("#{key}.override", @log)]
      blk.call(*params.first([blk.arity, 1].max))
    end
    child
  end

  def respond_to_missing?(*)
    true
  end

  def [](k)
    Recorder.new("#{@path}[#{k}]", @log)
  end

  def []=(k, v)
    @log << "#{@path}[#{k}] = #{v.inspect}"
  end
end

LOG = []

module Vagrant
  def self.require_version(*v)
    LOG << "require_version = #{v.join(",").inspect}"
  end

  def self.configure(version)
    yield Recorder.new("config", LOG)
  end
end

load ARGV.fetch(0)
puts LOG
